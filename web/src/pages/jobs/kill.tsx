// Kill a job, after a confirmation: DELETE /api/v1/jobs/{id} (cancelled, UserRequested).
import { useState } from 'preact/hooks';
import { Button, ConfirmDialog } from '../../components/ui';
import { type Job, jobTitle, killJob } from '../../lib/jobs';

export function KillButton({ job, small, onKilled }: { job: Job; small?: boolean; onKilled?: () => void }) {
  const [open, setOpen] = useState(false);
  const title = jobTitle(job);
  return (
    <>
      <Button
        kind="danger"
        {...(small ? { class: 'btn btn-danger btn-small' } : {})}
        onClick={() => setOpen(true)}
        aria-label={small ? `Kill ${title}` : undefined}
      >
        Kill
      </Button>
      <ConfirmDialog
        title={`Kill ${title}?`}
        open={open}
        onClose={() => setOpen(false)}
        onConfirm={async () => {
          await killJob(job.id);
          onKilled?.();
        }}
        confirmLabel="Kill the job"
        cancelLabel="Keep it running"
      >
        <p>
          The job stops now (its processes get SIGTERM, then SIGKILL) and ends as <strong>cancelled</strong>. Its log and
          telemetry stay.
        </p>
      </ConfirmDialog>
    </>
  );
}
