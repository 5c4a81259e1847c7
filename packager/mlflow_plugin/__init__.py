"""MLflow deployments plugin (entry point group ``mlflow.deployments``): ``mpack-lambda`` and ``mpack-azure``.

MLflow loads one module per target and wants exactly one ``BaseDeploymentClient`` subclass in it, so each
target is its own module (``lambda_target``, ``azure_target``); what they share (the typed ``-C`` keys, the
build, the error translation, ``run_local``) holds no client class."""
