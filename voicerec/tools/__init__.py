"""Developer tools over the library: evaluation, benchmarks, load tests and publishing to the Hub."""
