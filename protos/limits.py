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


def generation_problem(prompt: str, system: str, max_tokens: int, max_tokens_limit: int, temperature: float) -> str | None:
    """What is wrong with a generation request's common fields (None: nothing). Node and
    coordinator raise their own error type with this message."""
    if not prompt.strip():
        return "prompt is empty"
    if len(prompt) > MAX_PROMPT_CHARS:
        return f"prompt has {len(prompt)} characters; the limit is {MAX_PROMPT_CHARS}"
    if len(system) > MAX_SYSTEM_CHARS:
        return f"system prompt is longer than {MAX_SYSTEM_CHARS} characters"
    if not 0 <= max_tokens <= max_tokens_limit:
        return f"max_tokens must be 1..{max_tokens_limit} (0 for the default), got {max_tokens}"
    if not 0.0 <= temperature <= 2.0:
        return f"temperature must be within 0..2, got {temperature}"
    return None
