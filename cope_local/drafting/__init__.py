"""The drafting policy, with no store: the tasks and their prompts, the methods and the adapters
each reads, the decoding settings, and one draft prepared and generated on the engine."""
