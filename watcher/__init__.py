"""Event sources (pending txs, heads, logs) and calldata decoding into typed intents."""
