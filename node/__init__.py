"""The swarmrank node daemon: serves one model over gRPC, generates candidates and judges pairs."""
