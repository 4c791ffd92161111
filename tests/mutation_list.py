"""The changes `python -m tests.mutations` makes, one at a time: each must make a test of its claim fail.

Each is (id, product file, exact original snippet (found once), replacement, a unique part of the claim's line in
tests/README.md, the tests of that claim to run). Keep each test set small: the check runs them all, one change
after the other. tests/unit/test_mutation_list.py keeps the list in step with the code and tests/README.md.
"""

from __future__ import annotations

from tests.mutations import Mutation as M

CLI = "tests/e2e/test_cli.py"
IDEM = "the same key on another request is 422"
RIGHTS = "who a job acts for: the caller's rights"
JOBS_API = "another account's job is 404, never 403"
WEBHOOK_TO = "where a webhook may go"
LIMITS = "limits: `IMPORT_MAX_ROWS` fails before writing"
JOBS = "tests/e2e/test_jobs_api.py"
EXPORTS = "tests/e2e/exports/test_exports.py"
AUTOMATIONS = "tests/e2e/automations/test_automations.py"
HOSTILE = "tests/e2e/imports/test_hostile_files.py"
WH_PROC = "tests/e2e/webhooks/test_webhook_processes.py"
WH_JOBS = "tests/e2e/webhooks/test_job_webhooks.py"
WH_SUBS = "tests/e2e/webhooks/test_subscriptions.py"
LINK_VIEWS = "tests/e2e/mass/test_link_notices_and_views.py"
REPORTS = "tests/e2e/reports/test_reports.py"
COLUMNS = "tests/unit/test_import_columns.py"
MASS = "tests/e2e/mass/test_mass_operations.py"
REUSED = "tests/e2e/test_no_one_crosses.py::test_a_key_reused_with_another_file_or_another_query_string_is_a_422"

MUTATIONS: list[M] = [
    # ------------------------------------------------------------------ a malformed body is no empty filter
    M(
        "malformed-body-read-as-no-filter",
        "crm_api/routes/__init__.py",
        "    if not request.get_data(cache=True):\n        return {}\n",
        "    return request.get_json(silent=True) or {}\n",
        "a body that is no JSON object",
        ("tests/e2e/test_bad_input_is_never_a_500.py::test_a_malformed_body_is_refused_never_read_as_no_filter",),
    ),
    # ------------------------------------------------------------------ idempotency scope
    M(
        "idempotency-fingerprint-without-file-bytes",
        "crm_api/routes/__init__.py",
        "                digest.update(block)\n",
        "                pass\n",
        IDEM,
        (REUSED,),
    ),
    M(
        "idempotency-fingerprint-without-query",
        "crm_api/routes/__init__.py",
        '        digest.update(f"arg {name}={value}\\n".encode())\n',
        "        pass\n",
        IDEM,
        (REUSED,),
    ),
    # ------------------------------------------------------------------ rights at request time
    M(
        "job-rights-from-the-account-now",
        "crm_workers/domain/principal.py",
        'params.get("is_owner") is True, params.get("owner_only"))',
        'params.get("is_owner") is True, None)',
        RIGHTS,
        (
            "tests/e2e/mass/test_mass_operations.py::test_a_job_keeps_the_rights_its_caller_had_when_asking_"
            "though_the_account_opens_up_before_it_runs",
        ),
    ),
    # ------------------------------------------------------------------ claims
    M(
        "reminder-claim-without-its-condition",
        "crm_workers/services/reminders/fanout.py",
        '{"_id": {"$in": ids[start : start + IN_CHUNK]}, **condition},',
        '{"_id": {"$in": ids[start : start + IN_CHUNK]}},',
        "claims in batches of 1,000",
        (
            "tests/e2e/reminders/test_claims.py::test_reminders_another_replica_claimed_between_two_batches_are_not_"
            "claimed_again",
        ),
    ),
    # ------------------------------------------------------------------ run fencing
    M(
        "progress-write-without-run-fence",
        "crm_workers/jobs/progress.py",
        '            "run_id": self._job["run_id"],\n            "status": str(S.RUNNING),\n',
        '            "status": str(S.RUNNING),\n',
        "crash safety: a job whose heartbeat",
        (
            "tests/integration/test_job_record.py::"
            "test_a_running_job_without_heartbeat_can_be_claimed_again_and_the_old_run_can_no_longer_write",
        ),
    ),
    # ------------------------------------------------------------------ formula guards
    M(
        "formula-guard-without-minus-tab-cr",
        "crm_workers/domain/cells.py",
        'FORMULA_STARTS = ("=", "+", "-", "@", "\\t", "\\r")',
        'FORMULA_STARTS = ("=", "+", "@")',
        "CSV UTF-8 with BOM; formula cells guarded",
        ("tests/e2e/exports/test_exports.py::test_cells_a_spreadsheet_would_run_as_formulas_are_neutralised",),
    ),
    # ------------------------------------------------------------------ the scheduler
    M(
        "scheduler-first-reminder-tick-not-at-start",
        "scheduler/app.py",
        '        id="due-reminders",\n        next_run_time=datetime.now(UTC),\n',
        '        id="due-reminders",\n',
        "the schedule: coalescing with 60 s misfire grace",
        ("tests/integration/test_scheduler.py::test_the_schedule_is_the_readmes",),
    ),
    # ------------------------------------------------------------------ CLI exit codes
    M(
        "cli-unavailable-is-not-exit-3",
        "crm_jobs/client.py",
        "UNAVAILABLE = {502, 503, 504}",
        "UNAVAILABLE: set = set()",
        "the CLI: `import` (watch)",
        (f"{CLI}::test_an_api_answering_502_503_or_504_exits_3_in_one_line",),
    ),
    M(
        "cli-404-exits-2",
        "crm_jobs/client.py",
        "raise ClientError(line, UNREACHABLE if response.status_code in UNAVAILABLE else JOB_FAILED)",
        "raise ClientError(line, UNREACHABLE if response.status_code in UNAVAILABLE else USAGE)",
        "the CLI: `import` (watch)",
        (f"{CLI}::test_watch_exits_1_for_a_job_that_did_not_complete_and_errors_are_one_line",),
    ),
    # ------------------------------------------------------------------ exactly-once automations and webhooks
    M(
        "client-event-id-may-start-with-sys",
        "crm_workers/services/automations/run.py",
        "    if event_id and event_id.startswith(SYSTEM_EVENT_PREFIX):\n",
        "    if False:\n",
        "`sys:` event ids refused",
        ("tests/e2e/automations/test_automations.py::test_a_client_event_id_starting_with_sys_is_400",),
    ),
    M(
        "webhook-429-not-transient",
        "crm_workers/services/automations/actions.py",
        "    if status >= 500 or status == 429:\n",
        "    if status >= 500:\n",
        "a retried run skips what succeeded",
        (
            "tests/e2e/automations/test_automations.py::test_a_transient_webhook_failure_is_retried_from_the_failed_"
            "action_only",
        ),
    ),
    # ------------------------------------------------------------------ account scoping, every query family
    M(
        "selection-without-account",
        "crm_workers/services/selection.py",
        '    query: dict = {"account_id": principal.account_id}\n    s = selection',
        "    query: dict = {}\n    s = selection",
        "always the caller's account and, under `owner_only`, their records",
        (f"{EXPORTS}::test_another_accounts_records_are_never_exported",),
    ),
    M(
        "job-read-without-account",
        "crm_workers/jobs/record.py",
        'query = {"_id": oid(job_id), "account_id": account_id}\n    if owner_uid is not None:',
        'query = {"_id": oid(job_id)}\n    if owner_uid is not None:',
        JOBS_API,
        (f"{JOBS}::test_another_accounts_job_is_404_for_read_cancel_and_retry",),
    ),
    M(
        "job-list-without-account",
        "crm_workers/jobs/record.py",
        '    query: dict[str, Any] = {"account_id": account_id}\n    if owner_uid is not None:',
        "    query: dict[str, Any] = {}\n    if owner_uid is not None:",
        JOBS_API,
        (f"{JOBS}::test_the_job_list_is_the_accounts_newest_first_filtered_and_paginated",),
    ),
    M(
        "trigger-deal-without-account",
        "crm_workers/services/automations/run.py",
        '{"_id": oid(deal_id), "account_id": principal.account_id, **visible(db, principal)}',
        '{"_id": oid(deal_id), **visible(db, principal)}',
        "`sys:` event ids refused",
        (f"{AUTOMATIONS}::test_nothing_of_another_account_can_be_triggered_listed_or_retried",),
    ),
    M(
        "import-business-lookup-without-account",
        "crm_workers/services/imports/lookups.py",
        'query = {"account_id": self.account_id, "type": "business", "name": {"$in": names}, **self.visible}',
        'query = {"type": "business", "name": {"$in": names}, **self.visible}',
        "which contact a row is",
        ("tests/e2e/imports/test_imports.py::test_a_business_of_another_account_with_the_same_name_is_never_matched",),
    ),
    M(
        "due-badge-without-account",
        "crm_workers/services/reminders/fanout.py",
        'base = {"account_id": account_id, "assigned_to": uid, "status": "pending"}',
        'base = {"assigned_to": uid, "status": "pending"}',
        "the due badge",
        ("tests/e2e/reminders/test_reminders.py::test_the_due_badge_counts_the_callers_reminders_only",),
    ),
    # ------------------------------------------------------------------ owner scoping
    M(
        "visible-sees-everything",
        "crm_workers/services/visibility.py",
        'return {} if uid is None else {"owner": uid}',
        "return {}",
        "the selection: the caller's account, under",
        (
            "tests/e2e/mass/test_mass_operations.py::test_bulk_delete_by_filter_under_owner_only_deletes_only_the_users_"
            "own",
        ),
    ),
    M(
        "restricted-uid-never",
        "crm_workers/domain/principal.py",
        "return self.uid if self.owner_only and not self.is_owner else None",
        "return None",
        JOBS_API,
        (f"{JOBS}::test_under_owner_only_a_user_sees_only_their_own_jobs_and_the_owner_sees_all",),
    ),
    M(
        "job-read-without-owner",
        "crm_workers/jobs/record.py",
        '    if owner_uid is not None:\n        query["created_by"] = owner_uid\n    doc = query["_id"]',
        '    if False:\n        query["created_by"] = owner_uid\n    doc = query["_id"]',
        JOBS_API,
        ("tests/e2e/test_no_one_crosses.py::test_under_owner_only_a_user_can_neither_see_nor_undo_another_users_job",),
    ),
    M(
        "structure-delete-by-anyone",
        "crm_workers/services/visibility.py",
        "    if restricted_to(db, principal) is not None:\n        raise Forbidden(",
        "    if False:\n        raise Forbidden(",
        "structure deletes under `owner_only` are for owners only",
        ("tests/e2e/test_no_one_crosses.py::test_a_non_owner_cannot_delete_structure_under_owner_only",),
    ),
    M(
        "import-matches-hidden-businesses",
        "crm_workers/services/imports/lookups.py",
        '"name": {"$in": names}, **self.visible}',
        '"name": {"$in": names}}',
        "under `owner_only` a non-owner's import matches",
        ("tests/e2e/imports/test_import_visibility.py",),
    ),
    M(
        "export-under-owner-only-exports-all",
        "crm_workers/services/selection.py",
        "    conditions += list(visible(db, principal).items())\n",
        "",
        "always the caller's account and, under",
        (f"{EXPORTS}::test_under_owner_only_a_user_exports_only_their_own_records",),
    ),
    # ------------------------------------------------------------------ a deleted stage is no crash
    M(
        "bulk-update-to-a-deleted-stage-crashes",
        "crm_workers/services/mass/bulk_update.py",
        "            if found is None:  # checked at the request, deleted since",
        "            if found is None and False:",
        "bulk update: a stage deleted after the request",
        (f"{MASS}::test_a_bulk_update_to_a_stage_deleted_before_it_runs_fails_once_naming_it_and_changes_nothing",),
    ),
    # ------------------------------------------------------------------ the selection as it was when asked
    M(
        "selection-after-the-request",
        "crm_workers/services/selection.py",
        '    _also(query, "created_at", {"$lte": job["created_at"]})\n',
        "",
        "the selection: the caller's account, under",
        ("tests/e2e/test_requested_before.py::test_a_record_created_after_the_request_is_not_deleted",),
    ),
    M(
        "selection-condition-replaced",
        "crm_workers/services/selection.py",
        '        query.setdefault("$and", []).append({field: condition})',
        "        query[field] = condition",
        "the selection: the caller's account, under",
        ("tests/e2e/test_no_one_crosses.py::test_a_bulk_delete_with_created_to_deletes_only_what_the_dry_run_counted",),
    ),
    # ------------------------------------------------------------------ idempotency scope
    M(
        "idempotency-key-shared-by-users",
        "crm_workers/jobs/idempotency.py",
        'return IdempotencyKey(key=key, scope=f"user:{uid}", fingerprint=fingerprint',
        'return IdempotencyKey(key=key, scope="user", fingerprint=fingerprint',
        IDEM,
        ("tests/e2e/test_no_one_crosses.py::test_another_user_sending_my_key_gets_a_job_of_their_own",),
    ),
    M(
        "idempotency-client-key-in-system-scope",
        "crm_workers/jobs/idempotency.py",
        'return IdempotencyKey(key=key, scope=f"user:{uid}", fingerprint=fingerprint',
        "return IdempotencyKey(key=key, scope=SYSTEM_SCOPE, fingerprint=fingerprint",
        IDEM,
        ("tests/e2e/test_no_one_crosses.py::test_a_client_key_cannot_preempt_a_key_the_system_makes",),
    ),
    M(
        "idempotency-fingerprint-not-checked",
        "crm_workers/jobs/idempotency.py",
        '    if seen.get("fingerprint") != ik.fingerprint:',
        "    if False:",
        IDEM,
        ("tests/e2e/test_no_one_crosses.py::test_a_key_reused_on_another_request_is_a_422",),
    ),
    M(
        "idempotency-key-never-expires",
        "crm_workers/jobs/idempotency.py",
        '            "key": ik.key,\n            "created_at": {"$gt": now() - timedelta(seconds=ik.seconds)},\n',
        '            "key": ik.key,\n',
        "and no longer once the key's life is over",
        ("tests/e2e/test_jobs_api.py::test_an_idempotency_key_lasts_24_hours_exactly_then_starts_a_new_job",),
    ),
    # ------------------------------------------------------------------ run fencing
    M(
        "finish-without-run-fence",
        "crm_workers/jobs/runs.py",
        'update_one({"_id": job["_id"], "run_id": job["run_id"], "status": {"$in": sources(target)}},',
        'update_one({"_id": job["_id"], "status": {"$in": sources(target)}},',
        "crash safety: a job whose heartbeat",
        (
            "tests/integration/test_job_record.py::"
            "test_a_running_job_without_heartbeat_can_be_claimed_again_and_the_old_run_can_no_longer_write",
        ),
    ),
    M(
        "progress-write-ignores-cancel",
        "crm_workers/jobs/progress.py",
        '            "cancel_requested": {"$ne": True},\n        }\n',
        "        }\n",
        "cancellation: a queued job never starts",
        (f"{JOBS}::test_a_cancelled_running_job_stops_at_a_checkpoint_with_consistent_counts",),
    ),
    M(
        "checkpoint-never-writes",
        "crm_workers/jobs/progress.py",
        "        if flush or self._clock() - self._last_flush >= PROGRESS_FLUSH_SECONDS:\n            self.flush()",
        "        if flush:\n            self.flush()",
        "a cancelled operation stops between batches",
        (
            "tests/e2e/mass/test_mass_operations.py::test_a_cancelled_bulk_delete_stops_between_batches_with_consistent_"
            "data",
        ),
    ),
    # ------------------------------------------------------------------ claims
    M(
        "job-claimed-whatever-its-status",
        "crm_workers/jobs/runs.py",
        '        {"status": str(S.QUEUED)},\n        {"status": str(S.RUNNING), "heartbeat_at"',
        '        {},\n        {"status": str(S.RUNNING), "heartbeat_at"',
        "a claim makes the job running and counts the attempt",
        (
            "tests/integration/test_job_record.py::test_a_claim_makes_the_job_running_counts_the_attempt_and_a_second_"
            "claim_gets_nothing",
        ),
    ),
    M(
        "live-run-taken-without-stale-heartbeat",
        "crm_workers/jobs/runs.py",
        '        {"status": str(S.RUNNING), "heartbeat_at": {"$lt": ts - timedelta(seconds=stale_seconds)}},\n',
        '        {"status": str(S.RUNNING)},\n',
        "a claim makes the job running and counts the attempt",
        (
            "tests/integration/test_job_record.py::test_a_claim_makes_the_job_running_counts_the_attempt_and_a_second_"
            "claim_gets_nothing",
        ),
    ),
    M(
        "stale-sweep-takes-live-jobs",
        "crm_workers/jobs/runs.py",
        "    stale_before = (at or now()) - timedelta(seconds=stale_seconds)",
        "    stale_before = (at or now()) + timedelta(seconds=stale_seconds)",
        "crash safety: a job whose heartbeat",
        ("tests/integration/test_job_record.py::test_stale_running_jobs_are_requeued_and_fresh_ones_are_left_alone",),
    ),
    # ------------------------------------------------------------------ exactly-once notifications and webhooks
    M(
        "notification-not-once-per-occurrence-and-user",
        "crm_workers/services/reminders/fanout.py",
        "dedupe_key = f\"reminder:{reminder['_id']}:{reminder['due_at'].isoformat()}:{uid}\"",
        "dedupe_key = f\"reminder:{reminder['_id']}:{reminder['due_at'].isoformat()}:{uid}:{uuid.uuid4().hex}\"",
        "claims in batches of 1,000",
        ("tests/e2e/reminders/test_retries.py::test_a_claim_retried_after_its_job_died_notifies_each_assignee_once",),
    ),
    M(
        "automation-log-per-run-not-per-event",
        "crm_workers/services/automations/run.py",
        '    key = {"account_id": account_id, "event_id": event_id, "automation_id": automation["_id"],'
        ' "deal_id": deal_id}',
        '    key = {"account_id": account_id, "event_id": uuid.uuid4().hex, "automation_id": automation["_id"],'
        ' "deal_id": deal_id}',
        "one log per event and automation",
        (f"{AUTOMATIONS}::test_a_transient_webhook_failure_is_retried_from_the_failed_action_only",),
    ),
    M(
        "succeeded-actions-run-again",
        "crm_workers/services/automations/run.py",
        '        if state["status"] in ("succeeded", "skipped"):',
        '        if state["status"] in ("skipped",):',
        "one log per event and automation",
        (f"{AUTOMATIONS}::test_a_webhook_that_succeeded_is_not_sent_again_when_a_later_action_is_retried",),
    ),
    M(
        "automation-event-key-per-request",
        "crm_workers/services/automations/run.py",
        '        idempotency_key=event_key(deal["_id"], stage["_id"], event_id),\n',
        "        idempotency_key=None,\n",
        "one log per event and automation",
        (f"{AUTOMATIONS}::test_the_same_event_id_twice_does_nothing_the_second_time",),
    ),
    M(
        "webhook-timeout-not-transient",
        "crm_workers/services/automations/actions.py",
        "    except webhooks.WebhookUnreachable as exc:\n        raise TransientActionError(str(exc)) from None",
        "    except webhooks.WebhookUnreachable as exc:\n        raise PermanentActionError(str(exc)) from None",
        "a retried run skips what succeeded",
        (f"{AUTOMATIONS}::test_a_transient_webhook_failure_is_retried_from_the_failed_action_only",),
    ),
    M(
        "unrunnable-job-left-queued",
        "crm_workers/services/housekeeping.py",
        '            jobs.mark_unrunnable(db, job["_id"], f"the job cannot be enqueued: {type(exc).__name__}")',
        "            pass",
        "poison isolation (reminders, waiting automation logs",
        (
            "tests/e2e/reminders/test_poison_isolation.py::test_a_stale_job_no_worker_knows_does_not_stop_the_other_"
            "stale_jobs_from_being_requeued",
        ),
    ),
    M(
        "fairness-without-a-limit",
        "crm_workers/adapters/middleware/account_fairness.py",
        "if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then",
        "if true then",
        "fairness: at most `ACCOUNT_HEAVY_JOB_LIMIT`",
        (
            "tests/e2e/test_worker_middleware.py::test_an_account_runs_at_most_two_heavy_jobs_at_once_and_other_"
            "accounts_are_not_held_up",
        ),
    ),
    M(
        "heartbeat-write-per-run",
        "crm_workers/adapters/middleware/job_lifecycle.py",
        "                jobs.heartbeat(self.db, quiet)",
        "                [jobs.heartbeat(self.db, [run]) for run in quiet]",
        "one write to start a job",
        (
            "tests/e2e/test_job_claim.py::test_quiet_runs_of_a_process_share_one_heartbeat_write_and_each_job_ends_with_"
            "one_write",
        ),
    ),
    M(
        "webhook-redirect-followed",
        "crm_workers/adapters/webhooks.py",
        "            redirect=False,\n            preload_content=True,\n",
        "            redirect=True,\n"
        "            retries=urllib3.Retry(redirect=3),\n"
        "            preload_content=True,\n",
        "a webhook: signed, `X-CRM-Event-Id`, redirects not followed",
        (f"{AUTOMATIONS}::test_a_webhook_names_its_event_and_a_redirect_is_not_followed_but_fails_the_action",),
    ),
    # ------------------------------------------------------------------ formula guards
    M(
        "errors-csv-cells-unguarded",
        "crm_workers/services/imports/errors_file.py",
        "*(safe_cell(str(c)) for c in cells)]",
        "*(str(c) for c in cells)]",
        "the errors CSV: `row`",
        (
            "tests/e2e/imports/test_errors_csv.py::test_failed_rows_come_back_with_their_row_number_and_every_cell_and_"
            "header_formula_safe",
        ),
    ),
    M(
        "import-keeps-the-formula-guard-of-headers",
        "crm_workers/domain/headers.py",
        """return name[1:] if len(name) > 1 and name[0] == "'" and name[1] in FORMULA_STARTS else name""",
        "return name",
        "an export's formula guard is taken off",
        ("tests/unit/test_import_matching.py::test_a_header_keeps_no_formula_guard",),
    ),
    M(
        "column-reading-keeps-the-formula-guard",
        "crm_workers/domain/column_cells.py",
        "    if guarded.any():\n        text = pc.if_else(guarded, pc.utf8_slice_codeunits(text, 1), text)\n",
        "",
        "text columns read by vectorised operations give what each cell gives",
        (f"{COLUMNS}::test_every_sample_cell_reads_the_same_by_its_column_and_alone",),
    ),
    # ------------------------------------------------------------------ fast paths answer as the libraries
    M(
        "column-reading-takes-any-length-of-email",
        "crm_workers/domain/column_cells.py",
        "    shaped &= _mask(pc.less_equal(pc.binary_length(text), EMAIL_MAX_LENGTH))\n",
        "",
        "text columns read by vectorised operations give what each cell gives",
        (f"{COLUMNS}::test_every_sample_cell_reads_the_same_by_its_column_and_alone",),
    ),
    M(
        "column-reading-of-two-digit-years",
        "crm_workers/domain/column_cells.py",
        "        if is_numeric[i] and int(years[i]) < 100:",
        "        if False:",
        "text columns read by vectorised operations give what each cell gives",
        (f"{COLUMNS}::test_every_sample_cell_reads_the_same_by_its_column_and_alone",),
    ),
    # ------------------------------------------------------------------ SSRF guard
    M(
        "ssrf-private-addresses-pass",
        "crm_workers/domain/webhooks.py",
        "        if not candidate.is_global or candidate.is_multicast:",
        "        if candidate.is_multicast:",
        WEBHOOK_TO,
        (f"{AUTOMATIONS}::test_the_address_check_refuses_every_non_global_address",),
    ),
    M(
        "ssrf-parsers-may-disagree",
        "crm_workers/domain/webhooks.py",
        '    if (theirs.scheme, (theirs.hostname or "").lower(), their_port) != (ours.scheme, host, ours.port):',
        "    if False:",
        WEBHOOK_TO,
        (f"{AUTOMATIONS}::test_urls_that_parsers_could_read_differently_are_refused",),
    ),
    M(
        "ssrf-address-not-checked",
        "crm_workers/domain/webhooks.py",
        "    if not allow_private:\n        for address in addresses:",
        "    if False:\n        for address in addresses:",
        WEBHOOK_TO,
        (f"{AUTOMATIONS}::test_webhooks_to_private_addresses_are_refused_by_default",),
    ),
    M(
        "ssrf-credentials-in-url",
        "crm_workers/domain/webhooks.py",
        '    if ours.auth or theirs.username is not None or "@" in (theirs.netloc or ""):',
        "    if False:",
        WEBHOOK_TO,
        (f"{AUTOMATIONS}::test_urls_that_parsers_could_read_differently_are_refused",),
    ),
    # ------------------------------------------------------------------ hostile files
    M(
        "xlsx-no-2-gib-cap",
        "crm_workers/adapters/xlsx.py",
        "    if total > MAX_UNCOMPRESSED_BYTES:",
        "    if False:",
        LIMITS,
        (f"{HOSTILE}::test_a_spreadsheet_over_2_gib_uncompressed_is_refused_before_anything_is_inflated",),
    ),
    M(
        "xlsx-no-ratio-cap",
        "crm_workers/adapters/xlsx.py",
        "        if info.file_size > RATIO_CHECKED_FROM_BYTES and info.file_size > MAX_PART_RATIO",
        "        if False and info.file_size > MAX_PART_RATIO",
        LIMITS,
        (f"{HOSTILE}::test_a_shared_strings_zip_bomb_is_refused_before_it_is_inflated",),
    ),
    M(
        "xml-dtds-accepted",
        "crm_workers/adapters/xml_stream.py",
        "    parser.StartDoctypeDeclHandler = refuse\n    parser.EntityDeclHandler = refuse\n",
        "",
        LIMITS,
        (f"{HOSTILE}::test_a_dtd_in_the_shared_strings_is_refused",),
    ),
    M(
        "xlsx-columns-unbounded",
        "crm_workers/adapters/xlsx.py",
        "                if self.column > MAX_COLUMNS:",
        "                if False:",
        LIMITS,
        (f"{HOSTILE}::test_a_value_past_column_1000_fails_the_file_with_its_row",),
    ),
    M(
        "import-row-limit-ignored",
        "crm_workers/services/imports/run.py",
        "        if rows > (limit := settings.import_max_rows):",
        "        if (limit := settings.import_max_rows) < 0:",
        LIMITS,
        (
            "tests/integration/test_import_limits.py::test_a_file_over_the_row_limit_fails_the_job_before_anything_"
            "is_written",
        ),
    ),
    M(
        "csv-line-cap-ignored",
        "crm_workers/adapters/tabular.py",
        '        if len(line) > MAX_LINE_CHARS and not line.endswith(("\\n", "\\r")):',
        "        if False:",
        LIMITS,
        ("tests/unit/test_import_matching.py::test_a_line_over_the_cap_fails_the_file_before_it_is_held",),
    ),
    # ------------------------------------------------------------------ the lost-message sweeper
    M(
        "sweeper-resends-a-waiting-job",
        "crm_workers/services/housekeeping.py",
        '        if broker.client.exists(waiting_key(namespace, str(job["_id"]))):\n            continue',
        "        if False:\n            continue",
        "lost messages: a job still queued",
        ("tests/e2e/test_nothing_lost.py::test_a_job_waiting_for_its_accounts_slot_or_a_retry_is_not_sent_twice",),
    ),
    M(
        "sweeper-finds-nothing",
        "crm_workers/jobs/runs.py",
        '    found = list(db[QUEUES].find({**queued, "enqueued_at": {"$lt": lost}, "attempts": {"$lte": 0}}, fields))',
        "    found = []",
        "lost messages: a job still queued",
        ("tests/e2e/test_nothing_lost.py::test_jobs_whose_messages_were_flushed_from_redis_complete",),
    ),
    # ------------------------------------------------------------------ undo exactness
    M(
        "undone-delete-runs-again",
        "crm_workers/services/mass/bulk_delete.py",
        '    trash.refuse_if_undone(db, job["_id"])\n    query = job_selection_query(db, job, entity)',
        "    query = job_selection_query(db, job, entity)",
        "undo of a bulk delete, tag, field",
        ("tests/e2e/mass/test_undo.py::test_a_bulk_delete_that_failed_part_way_is_undone_exactly",),
    ),
    M(
        "undo-window-never-ends",
        "crm_workers/services/undo.py",
        '    if job["finished_at"] < now() - timedelta(days=UNDO_WINDOW_DAYS):',
        "    if False:",
        "undo of a bulk delete, tag, field",
        ("tests/e2e/mass/test_undo.py::test_an_undo_after_30_days_is_refused",),
    ),
    M(
        "undo-overwrites-what-changed-since",
        "crm_workers/services/mass/restore.py",
        "    if any(doc.get(f) != after[f] for f in checked):\n        raise NotRestored(",
        "    if False:\n        raise NotRestored(",
        "exactly: byte for byte where nothing changed",
        (
            "tests/e2e/mass/test_undo.py::test_an_undo_moves_back_only_the_deals_still_where_the_delete_put_them_and_"
            "lists_the_others",
        ),
    ),
    # ------------------------------------------------------------------ CLI exit codes
    M(
        "cli-usage-exits-1",
        "crm_jobs/client.py",
        "OK, JOB_FAILED, USAGE, UNREACHABLE = 0, 1, 2, 3",
        "OK, JOB_FAILED, USAGE, UNREACHABLE = 0, 1, 1, 3",
        "the CLI: `import` (watch)",
        (f"{CLI}::test_usage_errors_exit_2_and_an_unreachable_api_exits_3_each_in_one_line",),
    ),
    M(
        "cli-failed-job-exits-0",
        "crm_jobs/client.py",
        '    return OK if job["status"] == "completed" else JOB_FAILED',
        "    return OK",
        "the CLI: `import` (watch)",
        (f"{CLI}::test_a_failed_import_exits_1_with_its_error_and_json_says_why",),
    ),
    # ------------------------------------------------------------------ webhooks for job events
    M(
        "webhook-delivery-recorded-twice",
        "crm_workers/services/webhooks/outbox.py",
        '            "_id": stable_id(end["id"], key),\n',
        '            "_id": ObjectId(),\n',
        "nothing lost: a worker SIGKILLed right after",
        (f"{WH_PROC}::test_a_worker_sigkilled_right_after_a_job_ends_still_delivers_it_once",),
    ),
    M(
        "webhook-claim-without-lease",
        "crm_workers/services/webhooks/sender.py",
        'fields = {"claim_id": claim_id, "next_attempt_at": ts + LEASE, "last_attempt_at"',
        'fields = {"claim_id": claim_id, "last_attempt_at"',
        "each attempt claimed atomically",
        (f"{WH_JOBS}::test_a_slow_receiver_gets_one_post_per_delivery_while_it_takes_its_time",),
    ),
    M(
        "webhook-claim-of-a-copy-a-retry-changed",
        "crm_workers/services/webhooks/sender.py",
        '            "updated_at": candidate.get("updated_at"),\n',
        "",
        "each attempt claimed atomically",
        ("tests/integration/test_webhook_claims.py::test_a_copy_read_before_a_retry_reset_its_window_is_not_claimed",),
    ),
    M(
        "webhook-resent-after-2xx",
        "crm_workers/services/webhooks/outbox.py",
        '    if doc["status"] == "delivered":\n',
        "    if False:\n",
        "never sent again after a 2xx",
        (f"{WH_JOBS}::test_an_answer_other_than_5xx_or_429_fails_it_and_the_retry_button_sends_it_again_once",),
    ),
    M(
        "webhook-subscription-without-account",
        "crm_workers/services/webhooks/subscriptions.py",
        '        {"_id": oid(subscription_id), "account_id": principal.account_id}\n'
        '    )\n    if not doc:\n        raise NotFound("webhook not found"',
        '        {"_id": oid(subscription_id)}\n    )\n    if not doc:\n        raise NotFound("webhook not found"',
        "another account's subscription or delivery is a 404",
        (f"{WH_SUBS}::test_another_accounts_subscription_is_not_found_and_never_changed",),
    ),
    M(
        "webhook-non-owner-manages",
        "crm_workers/services/webhooks/subscriptions.py",
        "    if restricted_to(db, principal) is not None:",
        "    if False:",
        "under `owner_only` every webhook endpoint is for owners only",
        (f"{WH_SUBS}::test_under_owner_only_a_non_owner_is_refused_every_webhook_endpoint",),
    ),
    M(
        "webhook-private-url-allowed",
        "crm_workers/services/webhooks/subscriptions.py",
        "        check_url(url, allow_private=allow_private)",
        "        check_url(url, allow_private=True)",
        "a URL to a private, loopback or metadata address is refused",
        (f"{WH_SUBS}::test_a_url_to_a_private_or_metadata_address_is_refused",),
    ),
    M(
        "webhook-signature-without-timestamp",
        "crm_workers/domain/job_events.py",
        '    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()',
        "    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()",
        "the verification recipes of the webhooks page",
        (f"{WH_JOBS}::test_a_delivery_verifies_with_the_docs_python_and_openssl_recipes",),
    ),
    M(
        "link-notice-twice",
        "crm_workers/services/mass/link_notices.py",
        '        dedupe_key = f"contacts.linked:{job_id}:{uid}"',
        '        dedupe_key = f"contacts.linked:{job_id}:{uid}:{ts.timestamp()}"',
        "link tells the caller and the business",
        (f"{LINK_VIEWS}::test_a_socket_service_failing_once_still_tells_each_user_exactly_once",),
    ),
    M(
        "views-not-kept-for-undo",
        "crm_workers/services/mass/views.py",
        "        trash.keep_sets(db, account_id, job_id, VIEWS, VIEW_ALIGNED,",
        "        0 and trash.keep_sets(db, account_id, job_id, VIEWS, VIEW_ALIGNED,",
        "a field delete takes the field out of every saved view",
        (
            f"{LINK_VIEWS}::test_a_field_delete_takes_it_out_of_every_view_and_the_undo_restores_each_view_byte_for_byte",
        ),
    ),
    # ------------------------------------------------------------------ reports
    M(
        "report-scope-shared-by-owner-and-user",
        "crm_workers/services/reports/store.py",
        '    return "account" if restricted_uid is None else f"owner:{restricted_uid}"',
        '    return "account"',
        "under `owner_only` a non-owner's reports cover only what they own",
        (f"{REPORTS}::test_under_owner_only_a_user_sees_only_their_own_and_never_shares_the_owners_result",),
    ),
    M(
        "report-contacts-ignore-owner",
        "crm_workers/services/reports/contacts_report.py",
        ', **({"owner": owner} if owner is not None else {})}',
        "}",
        "under `owner_only` a non-owner's reports cover only what they own",
        (f"{REPORTS}::test_under_owner_only_a_user_sees_only_their_own_and_never_shares_the_owners_result",),
    ),
    M(
        "report-stored-result-served-however-old",
        "crm_workers/services/reports/store.py",
        '"computed_at": {"$gt": now() - timedelta(seconds=max_age_seconds)}',
        '"computed_at": {"$exists": True}',
        "a fresh stored result is answered at once",
        (f"{REPORTS}::test_a_fresh_result_is_served_at_once_and_a_stale_one_is_computed_again",),
    ),
    M(
        "report-stored-result-never-served",
        "crm_workers/services/reports/store.py",
        "    return db[REPORTS].find_one(",
        "    return None and db[REPORTS].find_one(",
        "a fresh stored result is answered at once",
        (f"{REPORTS}::test_a_fresh_result_is_served_at_once_and_a_stale_one_is_computed_again",),
    ),
    M(
        "report-periods-in-utc-not-account-time",
        "crm_workers/services/reports/periods.py",
        "tzinfo=zone).astimezone(UTC)",
        "tzinfo=UTC)",
        "new contacts per day, week or month in the account's timezone",
        (f"{REPORTS}::test_new_contacts_match_an_independent_count_per_local_period",),
    ),
    M(
        "report-run-outcome-not-kept-at-an-action-write",
        "crm_workers/services/automations/run.py",
        '        update["outcome"] = outcome(log["actions"])\n',
        "",
        "the automations report equals independent counts",
        (
            f"{AUTOMATIONS}::test_the_automations_report_counts_real_runs_actions_and_a_retry_moves_a_failure_to_a_success",
        ),
    ),
    M(
        "report-old-runs-outcome-not-filled",
        "crm_workers/services/migrations.py",
        '{"$set": {"outcome": outcome(log.get("actions") or [])}}',
        '{"$set": {"outcome": "[]"}}',
        "the automations report equals independent counts",
        (f"{REPORTS}::test_the_automations_report_matches_independent_counts",),
    ),
    M(
        "report-pipeline-of-every-account",
        "crm_workers/services/reports/pipeline_report.py",
        '{"$match": {**scope, "status": "open"}}',
        '{"$match": {"status": "open"}}',
        "the pipeline report equals independent sums",
        (f"{REPORTS}::test_the_pipeline_report_matches_independent_sums_in_base_currency_by_closing_day",),
    ),
]
