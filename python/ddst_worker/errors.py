"""The one exception type that crosses the wire: it becomes an `error` reply, never a crash."""


class WorkerError(Exception):
    """A typed failure: `code` is one of the protocol's error codes, `message` says what to do,
    `detail` is a JSON-serializable dict with specifics (offending paths, sizes, ...)."""

    def __init__(self, code: str, message: str, detail: dict | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.detail = detail or {}

    def to_json(self) -> dict:
        return {"code": self.code, "message": self.message, "detail": self.detail}


def execution_failed(failure: str, setting: str, without: str, reason: str, **detail) -> WorkerError:
    """A way of executing the steps (an execution setting: CUDA graphs, torch.compile) that failed here. The
    same steps run without it; `detail.reason` is what `ddst run` recognizes to turn `train.<setting>` off."""
    return WorkerError("internal", f"{failure}; train without {without}: set train.{setting} to false (a run may change "
                       "it on --resume; a table's cells take it from the table's experiment)", {"reason": reason, **detail})
