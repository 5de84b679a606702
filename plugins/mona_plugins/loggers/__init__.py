"""First-party experiment loggers: TensorBoard event files and an MLflow run, both local files,
offline. Their packages are imported only when a run names them (``pip install 'mona-kit[loggers]'``)."""

from mona_kit.api import hookimpl


@hookimpl
def register_loggers(register):
    from .mlflow_logger import MLflowConfig, make_mlflow
    from .tensorboard_logger import TensorBoardConfig, make_tensorboard

    register("tensorboard", make_tensorboard, config=TensorBoardConfig, requires=("tensorboard",),
             summary="TensorBoard event files in RUN_DIR/tensorboard: every metric as a scalar, config and environment as text")
    register("mlflow", make_mlflow, config=MLflowConfig, requires=("mlflow",),
             summary="an MLflow run (default: a file store in RUN_DIR/mlruns): metrics by step, config as params, "
                     "config and environment as artifacts; a resumed run continues the same MLflow run")
