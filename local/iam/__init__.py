"""IAM for the local stack: the policy evaluator, and its enforcement on the emulator's data path.

- ``local.iam.policy``: evaluates IAM policy documents (the very ones ``blueprint.policies`` renders);
  raises ``UnsupportedPolicyError`` for anything it does not implement instead of guessing.
- ``local.iam.enforcer``: ``IamEnforcer``, the WSGI middleware around moto's app that learns sessions from
  STS AssumeRole and judges every call they sign.
- One adapter per service turns its requests into authorization requests and renders its AccessDenied:
  ``local.iam.dynamodb`` and ``local.iam.sts``. To cover another service (S3: object ARNs, ``s3:prefix``),
  implement ``local.iam.wire.ServiceAuthorization`` in its own module and add it to
  ``enforcer.default_services``.
"""
