"""Cancel, retry and scale: from the key to a confirmation to one action on the exact target.

A mixin of MltopApp (tui/app.py): the target is captured by key when the key is pressed, the
dialog names it, and the runner (mltop.actions) sends it once with a deadline and audits it.
"""

from __future__ import annotations

from textual import work

from mltop.actions import Result
from mltop.model import Job
from mltop.registry import job_noun
from mltop.scaling import ScalePlan, proposed_down
from mltop.tui.confirm import ConfirmCancel, ConfirmWorkload
from mltop.tui.scale import ScaleDialog
from mltop.widgets.infra_tables import PoolsTable, WarningsTable

class JobActions:
    """Mixed into MltopApp: uses its main screen, sources, loops, runner, say() and _remedy_target()."""

    def action_cancel_job(self) -> None:
        self._confirm_job_action("jobs.cancel")

    def action_retry_job(self) -> None:
        self._confirm_job_action("jobs.retry")

    def _confirm_job_action(self, binding_id: str) -> None:
        in_queue = self.focused is self.table  # marks apply to a key pressed in the queue, not on a warning
        if self.read_only or not self._remedy_target(binding_id):
            return
        if self.table.marked and in_queue:
            self.confirm_bulk(binding_id)  # tui/bulk.py: every marked job, one confirmation
            return
        # The target is captured now, by key: whatever the table does next, this is the job.
        job = self.table.selected_job
        if job is None:
            return
        retry = binding_id == "jobs.retry"
        if not (job.retryable if retry else job.cancellable):
            why = job.not_cancellable_because or f"it is {job.native_state}: nothing to {'retry' if retry else 'cancel'}"
            self.say(f"{job.cluster}/{job.id}: {why}", severity="warning", timeout=10)
            return
        if self.runner.busy(job.key) or (not retry and job.stop_requested_at is not None):
            self.say(f"an action on {job.cluster}/{job.id} is already under way", severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.run_job_action(binding_id, job)

        self.push_screen(ConfirmCancel(job, retry=retry, noun=job_noun(job.source)), confirmed)

    @work(group="actions", description="a job action", exit_on_error=False)
    async def run_job_action(self, binding_id: str, job: Job) -> None:
        result = await self.send_one(binding_id, job)
        if result.outcome is None:
            self.say(result.error or "failed", severity="warning" if result.unknown else "error", timeout=15)
        elif binding_id == "jobs.cancel":
            self.say(f"{result.outcome.message}; waiting for it to report the job stopped", timeout=6)
            self._draw(with_cost=False)
        else:
            self.say(f"{result.outcome.message}; the table shows its state once the server reports it", timeout=6)

    async def send_one(self, binding_id: str, job: Job) -> Result:
        """One request for `job`, through the runner (deadline, in-flight set, audit); a stop the
        backend accepted is recorded so the row says STOP SENT until the backend reports it."""
        source_key = self.main.view.source_of(job.key) if self.main.view else None
        source = self.sources.get(source_key or "")
        method = "retry_job" if binding_id == "jobs.retry" else "cancel_job"
        result = await self.runner.run(binding_id, source, job.key, f"{job.cluster}/{job.id}",
                                       lambda s: getattr(s, method)(job.id),
                                       change="retry" if binding_id == "jobs.retry" else "stop")
        self._audit_problem()
        if source_key in self.loops:
            self.loops[source_key].poke()  # show what the backend holds now, success or not
        if result.outcome is not None and binding_id == "jobs.cancel":
            self.dashboard.stop_requested(job, self.clock(), source_key or "")
        return result

    def _audit_problem(self) -> None:
        if self.runner.audit is not None and self.runner.audit.error:
            self.say(f"the action was not written to the audit log: {self.runner.audit.error}", severity="warning")

    def action_workload_active(self) -> None:
        """`a`: stop or resume the selected job's Kueue Workload (spec.active), after a confirmation."""
        if self.read_only:
            return
        job = self.table.selected_job  # captured now, by key
        if job is None:
            return
        if not job.workload:
            self.say(f"{job.cluster}/{job.id}: not queued by Kueue: no workload to stop or resume", severity="warning")
            return
        if self.runner.busy(job.key):
            self.say(f"an action on {job.cluster}/{job.id} is already under way", severity="warning")
            return
        resume = job.admission == "stopped"

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.set_workload_active(job, resume)

        self.push_screen(ConfirmWorkload(job, resume=resume), confirmed)

    @work(group="actions", description="stop or resume a Kueue workload", exit_on_error=False)
    async def set_workload_active(self, job: Job, active: bool) -> None:
        source_key = self.main.view.source_of(job.key) if self.main.view else None
        source = self.sources.get(source_key or "")
        result = await self.runner.run("jobs.workload", source, job.key, f"{job.cluster}/{job.workload}",
                                       lambda s: s.set_workload_active(job, active),
                                       change=f"spec.active: {'false -> true' if active else 'true -> false'}")
        self._audit_problem()
        if source_key in self.loops:
            self.loops[source_key].poke()
        if result.outcome is None:
            self.say(result.error or "failed", severity="warning" if result.unknown else "error", timeout=15)
        else:
            self.say(f"{result.outcome.message}; the queue shows Kueue's state once the cluster reports it", timeout=8)

    def action_scale_pool(self) -> None:
        from_warning = isinstance(self.focused, WarningsTable)
        if self.read_only or not self.main.has_infra or not self._remedy_target("pools.scale"):
            return
        pool = self.main.query_one(PoolsTable).selected  # captured now, by key
        if pool is None:
            return
        if not pool.scalable:
            self.say(f"{pool.name}: {pool.why_not_scalable}", severity="warning", timeout=8)
            return
        if self.runner.busy(pool.key):
            self.say(f"a scale of {pool.name} is already under way", severity="warning")
            return

        def confirmed(plan: ScalePlan | None) -> None:
            if plan is not None:
                self.scale(plan)

        # From a warning, the dialog proposes its remedy (the size without the idle replicas):
        # enter confirms what the plan below the field shows.
        self.push_screen(ScaleDialog(pool, proposed_down(pool) if from_warning else None), confirmed)

    @work(group="actions", description="scale a pool", exit_on_error=False)
    async def scale(self, plan: ScalePlan) -> None:
        pool = plan.pool
        source_key = self.main.view.source_of(pool.key) if self.main.view else None
        source = self.sources.get(source_key or "")
        change = ", ".join(f"{c.obj} {c.field}: {c.old} -> {c.new}" for c in plan.changes)
        result = await self.runner.run("pools.scale", source, pool.key, pool.name, lambda s: s.scale(plan),
                                       change=change)
        self._audit_problem()
        if source_key in self.loops:
            self.loops[source_key].poke()
        if result.outcome is None:
            self.say(result.error or "failed", severity="warning" if result.unknown else "error", timeout=15)
        else:
            self.say(f"{result.outcome.message}; the pools panel shows the new value once the server reports it",
                     timeout=8)
