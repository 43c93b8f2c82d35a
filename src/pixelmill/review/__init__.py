"""Human review (see docs/review.md): queues of outputs and images to judge, fed by quality
gates, datasets and spot checks; reviewers who judge them in the review app; and verdicts that
flow back into delivery, gates, datasets and models.

The Python API::

    from pixelmill.review import Reviews
    reviews = Reviews.of(settings)
    reviews.configure("faces", labels=["artefacts", "colour-shift"], reviewers=2)
    item = reviews.next("faces", "ann")
    reviews.judge(item.id, "ann", "approved", labels=["artefacts"], note="fine at 1:1")
"""

from pixelmill.review.store import Counts, Decision, Item, Queue, Reviews

__all__ = ["Counts", "Decision", "Item", "Queue", "Reviews"]
