"""The delivery worker: sends what the handlers recorded, at least once, never lost.

A due row is claimed in a short transaction that sets a lease (its next_attempt_at moves to
the end of the lease) and freezes the body on the first try, so every retry sends the same
body under the same Innomatch-Delivery-Id. The send happens outside any transaction; its
outcome is recorded, with the alert.delivered / alert.failed event in the outbox, only if
the lease is still ours. A process killed mid-send leaves the row leased; when the lease
runs out it is due again and sent again under the same delivery id, which receivers use to
drop the repeat.

The work is split by role: `claimer` (lease due rows, freeze bodies, make batches),
`sender` (one webhook call or e-mail per claim, an `Outcome`), `recorder` (outcomes, audit
events, metrics) and `worker`, the loop that ties them together. They all log under this
package's name.
"""

from services.notifier.delivery.claimer import Claim, Claimer
from services.notifier.delivery.recorder import Recorder
from services.notifier.delivery.sender import RETRY, Outcome, Sender
from services.notifier.delivery.worker import DeliveryWorker

__all__ = ["RETRY", "Claim", "Claimer", "DeliveryWorker", "Outcome", "Recorder", "Sender"]
