// Share a resource (a job, a storage folder, an image) with a user or a role:
// POST /api/v1/users/{name}/permissions with {uri, action}. Used by the jobs, storage and
// images pages.
import { Dialog, EmptyState } from './ui';

export interface ShareProps {
  uri: string; // e.g. "job://cluster/alice/job-abc", "storage://cluster/alice/data", "image://cluster/alice/train"
  title: string; // what is shared, for the dialog title: "job train-1"
  open: boolean;
  onClose: () => void;
}

export function ShareDialog({ title, open, onClose }: ShareProps) {
  return (
    <Dialog title={`Share ${title}`} open={open} onClose={onClose}>
      <EmptyState title="Coming soon" />
    </Dialog>
  );
}
