"""Every ``swarmrank bench …`` target, the datasets they read, ``LocalSwarm`` and the charts."""
