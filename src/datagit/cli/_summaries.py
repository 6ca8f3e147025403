# ruff: noqa: E501  (each line is a verb docstring's first sentence, kept whole)
"""Each verb's one-line help, so `datagit --help` lists verbs without importing them.

Importing every verb module to print this list cost half a second.
`tests/cli/test_verbs.py` checks each line against the command's own docstring; a verb
missing here is still listed (imported for its help), just slower.
"""

SUMMARIES = {
    "add": "Stage changes in datasets (by name) or in paths inside them; no args: everything.",
    "bisect": "Binary-search history for the commit that turned good into bad.",
    "blame": "Blame DATASET/ID (its whole history) or DATASET (one line per example); or, with --region/--class, the training examples that moved a weight region (docs/ledger.md).",
    "branch": "List branches, create NAME at START, or delete NAME.",
    "cat": "Write the bytes of one example at a revision to stdout (verified).",
    "check": "Find examples with the same bytes: within a dataset, and across datasets (leakage).",
    "checkout": "Make the workspace match REV (a branch attaches HEAD; anything else detaches it).",
    "clone": "Clone URL into DIRECTORY (new or empty) and check out its default branch.",
    "commit": "Record staged changes as a new commit.",
    "config": "Get or set a repository setting, e.g. user.name and user.email.",
    "credit": "Who did the labelling: examples added, labels set, still standing at REV, overturned; with --value, what their examples were worth to the model (docs/ledger.md).",
    "dataset": "Declare and list the datasets this workspace versions.",
    "diff": "Show what changed between two states, example by example.",
    "eval": "Print the eval metrics of the model trained on REV, training first if not cached.",
    "fetch": "Download REMOTE's branches and tags and their content (verified), without merging.",
    "fsck": "Verify git objects and every stored byte against its address.",
    "fsmonitor": "Watch the workspace so status and commit look only at what changed.",
    "gc": "Drop content no commit, branch, tag or the stage refers to; repack git objects.",
    "import-dvc": "Replay DIR's DVC history as datagit commits (author, date and message kept).",
    "init": "Create an empty datagit repository in DIRECTORY (default: here).",
    "label": "Stage RUN's predictions as the labels of POOL's unlabelled examples.",
    "log": "Show commits reachable from REVS (default HEAD), newest first.",
    "ls": "List examples at REV: id, label, content address (and annotator).",
    "merge": "Merge REV into HEAD, example by example (three-way, against the merge base).",
    "mv": "Move one example: to another class folder (re-label) or name (new id); staged.",
    "pull": "Fetch, then merge the current branch's upstream into it (fast-forward when possible).",
    "push": "Upload the content REMOTE lacks, then move REMOTE's BRANCH (default: the current one).",
    "relabel": "Stage new labels: DATASET/ID LABEL [DATASET/ID LABEL ...].",
    "remote": "List remotes, or add, modify, remove and check them.",
    "reset": "Point the current branch at REV (default HEAD) without detaching, as git's reset.",
    "resolve": "Resolve one merge conflict (or all): by label, by side, or as the workspace has it.",
    "restore": "Put examples back as the stage has them (or REV), or unstage them with --staged.",
    "revert": "Commit the undoing of REV: its re-labels re-labelled back, its additions removed, its removals restored.",
    "rm": "Remove examples from the workspace and the stage (a table's rows as DATASET/ID).",
    "runs": "List cached harness runs, newest first.",
    "show": "Show commit REV, its author and annotator, and its changes against its first parent.",
    "stash": "Save the stage and workspace changes and return to HEAD (no subcommand: push).",
    "status": "Show new, removed, re-labelled, renamed and modified examples, staged and not.",
    "suggest": "Rank POOL's unlabelled examples by the [harness] model's uncertainty.",
    "suspects": "Rank DATASET's examples (default: [harness] train) by how likely their label is wrong.",
    "switch": "Switch to BRANCH.",
    "tag": "List tags, tag REV as NAME, or delete NAME.",
    "train": "Train the [harness] model on the data at REV and evaluate it (cached by data + config).",
    "ui": "Browse history, diffs with thumbnails, blame, runs, credit and bisect in a browser.",
}
