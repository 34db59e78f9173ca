"""Loss functions, each a small pure function, looked up by name from configs."""

from gm.losses.vae import (RECON_LOSSES, bernoulli_log_likelihood, elbo,
                           iwae_bound, kl_normal, log_normal_pdf)

__all__ = ["RECON_LOSSES", "bernoulli_log_likelihood", "elbo", "iwae_bound",
           "kl_normal", "log_normal_pdf"]
