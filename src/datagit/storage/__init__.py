"""Storage: git metadata (pygit2), the content store, the stat cache, locks, remotes."""
