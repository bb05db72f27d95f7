from llmops_cli.main import run

run()
