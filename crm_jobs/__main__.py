"""`python -m crm_jobs …` is `crm-jobs …` (where the console script is not on PATH)."""

from crm_jobs.cli import main

main()
