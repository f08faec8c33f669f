"""The toolkit batches are made with: slices, parking rows, reports (each loop also looks at
`Ports.stop` between slices: renewly.ports.StopRequest, the first Ctrl-C).

Which batches there are and when they run is renewly.scheduler, above every concept.
"""
