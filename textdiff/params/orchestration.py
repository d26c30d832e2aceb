"""How Prefect runs the stages (pipelines/): no stage reads this section, so editing it re-runs nothing."""

from __future__ import annotations

from pydantic import Field

from textdiff.params.base import Section


class OrchestrationParams(Section):
    """How Prefect runs the stages (pipelines/); no stage depends on these."""

    retries: int = Field(2, ge=0, description="retries of a failed stage")
    retry_backoff_s: float = Field(10.0, ge=0, description="first retry delay; doubles per retry")
    schedule_cron: str = Field("0 3 * * *", description="cron of the served deployment")
    work_pool: str = Field("textdiff", description="work pool of the pipeline's deployment (whole flow runs)")
    gpu_pool: str | None = Field(None, description="work pool that runs the stages of the kinds in gpu_stages, "
                                                   "each in a flow run of its own; null: every stage runs where "
                                                   "the flow runs. Needs remote: outputs come back through it")
    gpu_stages: list[str] = Field(["train", "sample"], description="kinds of stage (the name before @) sent to "
                                                                 "gpu_pool")
    gpu_timeout_s: float = Field(6 * 3600, gt=0, description="how long a stage sent to gpu_pool may take, queueing "
                                                            "for a worker included, before the stage fails")
    remote: str | None = Field(None, description="DVC remote shared by workers (null: local cache only)")
    sweep_jobs: int = Field(1, ge=1, description="DVC experiments run at once in an ablation sweep")
    server_startup_timeout_s: int = Field(300, ge=1, description="how long a flow waits for Prefect's temporary API "
                                                                "server (no PREFECT_API_URL set) to answer")
    concurrency: int = Field(1, ge=1, description="stages a flow runs at once on one worker, each as soon as its "
                                                  "DVC upstreams finish; the cores are shared out between them, so "
                                                  "each stage's speed figures then share the machine")
