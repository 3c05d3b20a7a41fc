// Kill a job, after a confirmation: DELETE /api/v1/jobs/{id} (cancelled, UserRequested).
import { useState } from 'preact/hooks';
import { Button, Dialog, ErrorBanner } from '../../components/ui';
import { useAction } from '../../lib/hooks';
import { type Job, jobTitle, killJob } from '../../lib/jobs';

export function KillButton({ job, small, onKilled }: { job: Job; small?: boolean; onKilled?: () => void }) {
  const [open, setOpen] = useState(false);
  const kill = useAction(async () => {
    await killJob(job.id);
  });
  const title = jobTitle(job);
  return (
    <>
      <Button
        kind="danger"
        {...(small ? { class: 'btn btn-danger btn-small' } : {})}
        onClick={() => {
          kill.setError(null);
          setOpen(true);
        }}
        aria-label={small ? `Kill ${title}` : undefined}
      >
        Kill
      </Button>
      <Dialog title={`Kill ${title}?`} open={open} onClose={() => setOpen(false)}>
        <p>
          The job stops now (its processes get SIGTERM, then SIGKILL) and ends as <strong>cancelled</strong>. Its log and
          telemetry stay.
        </p>
        <ErrorBanner error={kill.error} />
        <div class="dialog-actions">
          <Button onClick={() => setOpen(false)}>Keep it running</Button>
          <Button
            kind="danger"
            busy={kill.busy}
            onClick={async () => {
              if (await kill.run()) {
                setOpen(false);
                onKilled?.();
              }
            }}
          >
            Kill the job
          </Button>
        </div>
      </Dialog>
    </>
  );
}
