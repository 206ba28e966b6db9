"""What the Pulumi program and the local stack both declare, as plain data: no Pulumi SDK, no boto3."""
