//! What a caller asks of a running dump (run, pause, cancel), and how the commit loop hears it.

use tokio::sync::watch;

/// What a caller asks of a running dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Run,
    Pause,
    Cancel,
}

/// The caller's side: the latest request, which the commit loop subscribes to.
#[derive(Debug)]
pub(crate) struct Controls(watch::Sender<Control>);

impl Controls {
    pub(crate) fn new() -> Controls {
        Controls(watch::Sender::new(Control::Run))
    }

    /// Asks for `next`. A cancel is final: neither pause nor resume undoes it.
    pub(crate) fn ask(&self, next: Control) {
        self.0.send_if_modified(|current| {
            if *current == Control::Cancel || *current == next {
                return false;
            }
            *current = next;
            true
        });
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        *self.0.borrow() == Control::Cancel
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Control> {
        self.0.subscribe()
    }
}

/// Waits until the dump is cancelled.
pub(crate) async fn wait_for_cancel(control: &mut watch::Receiver<Control>) {
    // A closed channel means the manager is gone: nothing can cancel any more.
    if control.wait_for(|c| *c == Control::Cancel).await.is_err() {
        std::future::pending::<()>().await;
    }
}
