"""Research tools on LlamaIndex (the agent benchmark's runner), kept out of the runtime:
nothing in ``llama_index_tale`` imports this package; ``tale agent-bench`` finds it through the
``tale.agent_runners`` entry point."""
