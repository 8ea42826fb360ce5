"""The swarmrank coordinator: dispatch, judging plan, consensus, reputation, registry, APIs."""
