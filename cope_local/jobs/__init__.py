"""Jobs that use the layers below for one purpose each: a person's draft, the watched child process
of long jobs, the nightly schedule, privacy (status, export, forget), the decoding benchmark."""
