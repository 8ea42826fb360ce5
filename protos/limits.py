"""Explicit bounds on everything that crosses the wire. Both sides import these."""

# gRPC refuses larger messages on both send and receive (default would be 4 MiB receive, no send cap).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_PROMPT_CHARS = 32_000
MAX_SYSTEM_CHARS = 4_000
MAX_ANSWER_CHARS = 64_000
MAX_TOKENS_LIMIT = 4096
MAX_COMPARISONS_PER_JUDGE_CALL = 64
MIN_NONCE_BYTES = 16
MAX_NONCE_BYTES = 64
MAX_ID_CHARS = 128

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
