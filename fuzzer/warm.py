"""Imported by the sandbox's forkserver (fuzzer.sandbox.PRELOAD) and nothing else: the
forkserver only imports modules by name, so what every worker should inherit instead of
loading after each recycle is loaded here, at import."""

from fuzzer import generate, motif_sampler

generate.preload()
motif_sampler.preload()
