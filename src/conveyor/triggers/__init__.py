"""Change detection: local repositories watched, remote ones and S3 objects polled, git-host
deliveries received, each change fed to the pipelines it starts (`conveyor.domain.triggers`
decides which)."""
