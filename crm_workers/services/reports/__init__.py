"""Reports (docs/contract.md §8): intake (stored result or a job), periods in the account's timezone, the three
aggregations, the store."""
