"""Pure logic: records, the sharded manifest, layouts, changes and checkout plans."""
