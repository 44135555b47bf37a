"""Research tools on LangChain (the agent benchmark's runner), kept out of the runtime:
nothing in ``langchain_tale`` imports this package; ``tale agent-bench`` finds it through the
``tale.agent_runners`` entry point."""
