"""The swarmrank wire protocol: .proto sources, checked-in generated code, canonical signing bytes."""

PROTOCOL_VERSION = "swarmrank/1"
