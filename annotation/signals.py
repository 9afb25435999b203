"""What the annotation app tells the apps above it (``ml``: dataset versions), without
knowing them. Sent by services inside their transaction; a receiver's writes join it.

- ``item_taken_down(item, request, actor)``: a takedown was accepted and the item
  tombstoned. Receivers return a list of ``{"kind", "id", "label"}`` for whatever held the
  item (e.g. dataset versions), which the takedown records in ``affected``.
- ``labels_withdrawn(project_id, annotator_id, item_ids, actor)``: an annotator withdrew;
  their labels on ``item_ids`` no longer count.
"""

from django.dispatch import Signal

item_taken_down = Signal()
labels_withdrawn = Signal()
