"""crm-jobs workers: the job record, services, domain rules and adapters."""
