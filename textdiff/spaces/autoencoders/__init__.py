"""Sentence autoencoders over the frozen MiniLM encoder (PLANNER's VAE, LD4LG's compression network),
their autoregressive decoder and the cached latents the latent diffusion rows train on."""
