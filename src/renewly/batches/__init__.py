"""The toolkit batches are made with: slices, parking rows, stopping between slices, reports.

Which batches there are and when they run is renewly.scheduler, above every concept.
"""
