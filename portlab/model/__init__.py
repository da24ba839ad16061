"""The lab model: a lab as data, loaded and validated, and its one template context.

    catalog     where labs are found (and which ones do not load)
    loader      lab.yaml -> Lab, every error with file:line:key (checkspec: the checks' part)
    reader      typed access to the file; numbers that are templates over params
    params      a lab's params, and other values for them (variants)
    probekinds  the probe kinds of the format: their keys and types
    types       the dataclasses
    context     a lab bound to an instance: the one template context
    plan        what starting an instance needs, and what each node reads at start
    allocate    subnets per instance; templating, wgkeys, yamlsrc: the helpers

Nothing here talks to an engine or imports the Docker SDK.
"""
