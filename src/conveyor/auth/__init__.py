"""Access control: who is calling (SigV4 with keys from the store), what they may do (IAM
policies, evaluated by `conveyor.domain.policy`), and the audit trail of every call."""
