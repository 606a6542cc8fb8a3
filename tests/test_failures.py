"""Which failures are final, read from Snakemake's own log text."""

from llmdissect.failures import final_failures

LOG = """
Error in rule training_cell:
    message: SLURM-job '37' failed, SLURM status is: 'CANCELLED'. Reason: Unknown.
    jobid: 4
    output: results/records/a.json, results/records/a.steps.jsonl
    log: results/logs/a.log (check log file(s) for error details)
    external_jobid: 37
Trying to restart job 4.
Error in rule training_cell:
    message: SLURM-job '44' failed, SLURM status is: 'TIMEOUT'. Reason: Unknown.
    jobid: 4
    output: results/records/a.json, results/records/a.steps.jsonl
    external_jobid: 44
Error in rule profile_cell:
    message: SLURM-job '45' failed, SLURM status is: 'CANCELLED'.
    jobid: 9
    output: results/records/b.json
Trying to restart job 9.
Error in rule serving_cell:
    message: None
    jobid: 11
    output: results/records/c.json
    log: results/logs/c.log (check log file(s) for error details)
"""


def test_only_last_attempts_are_final_and_each_keeps_its_message():
    failures = final_failures(LOG)
    assert set(failures) == {
        "results/records/a.json",
        "results/records/a.steps.jsonl",
        "results/records/c.json",
    }
    message, outputs = failures["results/records/a.json"]
    assert "TIMEOUT" in message
    assert outputs == ["results/records/a.json", "results/records/a.steps.jsonl"]
    assert "results/logs/c.log" in failures["results/records/c.json"][0]


def test_jobs_stopped_by_sigterm_are_not_failures():
    # what Snakemake 9 prints when `timeout` or a batch system sends it SIGTERM
    log = (
        LOG
        + """Will exit after finishing currently running jobs (scheduler).
Error in rule training_cell:
    jobid: 12
    output: results/records/d.json
    log: results/logs/d.log (check log file(s) for error details)
"""
    )
    failures = final_failures(log)
    assert "results/records/d.json" not in failures
    assert "results/records/c.json" in failures


def test_jobs_stopped_by_the_user_are_not_failures():
    log = (
        LOG
        + """Terminating processes on user request, this might take some time.
KeyboardInterrupt
Error in rule profile_cell:
    jobid: 12
    output: results/records/d.json
    log: results/logs/d.log (check log file(s) for error details)
"""
    )
    failures = final_failures(log)
    assert "results/records/d.json" not in failures
    assert "results/records/c.json" in failures  # failed before the stop: still final
