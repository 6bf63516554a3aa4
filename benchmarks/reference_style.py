"""The baseline the benchmarks compare against: β-TCVAE trained the way the reference code trains it.

Written here from Chen et al. (2018) in the *style* of YannDubs/disentangling-vae's training path, not copied
from it: the same Burgess conv net (Burgess et al. 2018, §A; sigmoid output, summed binary cross-entropy per
image), plain-tensor Gaussian log densities, the minibatch-stratified-sampling weight matrix rebuilt on the
host every step and moved to the device, a ``DataLoader`` over a ``Dataset`` that returns one float image per
item, ``optimizer.zero_grad()`` and ``loss.item()`` every step. The model and the value of the loss are
vaeray's ``beta_tcvae`` (α = 1, β = 6, γ = 1, z = 10): the log weight is added once per pair, as vaeray does
(the reference adds it per dimension, which changes the value, not the cost). What differs is only how the
step is written, which is what the benchmark measures.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

LOG_2PI = math.log(2 * math.pi)


class Encoder(nn.Module):
    def __init__(self, latent_dim: int = 10, channels: int = 1, size: int = 64):
        super().__init__()
        n = 4 if size == 64 else 3
        self.convs = nn.ModuleList(nn.Conv2d(channels if i == 0 else 32, 32, 4, 2, 1) for i in range(n))
        self.lin1, self.lin2 = nn.Linear(32 * 4 * 4, 256), nn.Linear(256, 256)
        self.out = nn.Linear(256, 2 * latent_dim)

    def forward(self, x):
        for conv in self.convs:
            x = torch.relu(conv(x))
        x = torch.relu(self.lin2(torch.relu(self.lin1(x.view(x.shape[0], -1)))))
        mu, logvar = self.out(x).view(-1, 2, self.out.out_features // 2).unbind(1)
        return mu, logvar


class Decoder(nn.Module):
    def __init__(self, latent_dim: int = 10, channels: int = 1, size: int = 64):
        super().__init__()
        n = 4 if size == 64 else 3
        self.lin1, self.lin2, self.lin3 = nn.Linear(latent_dim, 256), nn.Linear(256, 256), nn.Linear(256, 512)
        self.deconvs = nn.ModuleList(
            nn.ConvTranspose2d(32, channels if i == n - 1 else 32, 4, 2, 1) for i in range(n)
        )

    def forward(self, z):
        x = torch.relu(self.lin3(torch.relu(self.lin2(torch.relu(self.lin1(z))))))
        x = x.view(z.shape[0], 32, 4, 4)
        for i, deconv in enumerate(self.deconvs):
            x = deconv(x)
            x = torch.relu(x) if i < len(self.deconvs) - 1 else torch.sigmoid(x)
        return x


class RefVAE(nn.Module):
    def __init__(self, latent_dim: int = 10, channels: int = 1, size: int = 64):
        super().__init__()
        self.encoder, self.decoder = Encoder(latent_dim, channels, size), Decoder(latent_dim, channels, size)

    def forward(self, x):
        mu, logvar = self.encoder(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decoder(z), (mu, logvar), z


def log_density_gaussian(x, mu, logvar):
    return -0.5 * (LOG_2PI + logvar) - (x - mu) ** 2 * torch.exp(-logvar) / 2


def log_importance_weight_matrix(batch_size: int, dataset_size: int) -> torch.Tensor:
    """MSS weights (Chen et al. 2018, App. C.2): 1/N on the diagonal, the partner (i+1) mod M, 1/(M−1) else."""
    m, n = batch_size, dataset_size
    w = np.full((m, m), 1.0 / (m - 1))
    rows = np.arange(m)
    w[rows, (rows + 1) % m] = (n - m + 1) / (n * (m - 1))
    w[rows, rows] = 1.0 / n
    return torch.from_numpy(np.log(w)).float()


def btcvae_loss(model, x, dataset_size, alpha=1.0, beta=6.0, gamma=1.0):
    """rec + α·MI + β·TC + γ·DWKL, per-image means, as vaeray's ``beta_tcvae`` computes them."""
    recon, (mu, logvar), z = model(x)
    b = x.shape[0]
    rec = F.binary_cross_entropy(recon, x, reduction="sum") / b
    log_q_zx = log_density_gaussian(z, mu, logvar).sum(1)
    log_pz = log_density_gaussian(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
    mat = log_density_gaussian(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))  # (M, M, D)
    log_w = log_importance_weight_matrix(b, dataset_size).to(x.device)  # rebuilt every step, as the reference
    log_qz = torch.logsumexp(mat.sum(2) + log_w, dim=1)
    log_prod_qzi = torch.logsumexp(mat + log_w.unsqueeze(2), dim=1).sum(1)
    mi = (log_q_zx - log_qz).mean()
    tc = (log_qz - log_prod_qzi).mean()
    dwkl = (log_prod_qzi - log_pz).mean()
    return rec + alpha * mi + beta * tc + gamma * dwkl


class ImageDataset(torch.utils.data.Dataset):
    """One float image per item, converted on access (the reference's ``ToTensor`` on a uint8 array)."""

    def __init__(self, images: np.ndarray):
        self.images = images  # (N, H, W) uint8 in {0, 1}

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return torch.from_numpy(self.images[i]).float().unsqueeze(0), 0


def train_steps(model, loader, optimizer, steps: int, dataset_size: int, device="cpu") -> list[float]:
    """The reference's inner loop: next batch, loss, zero_grad, backward, step, ``loss.item()``."""
    losses = []
    it = iter(loader)
    for _ in range(steps):
        try:
            x, _ = next(it)
        except StopIteration:
            it = iter(loader)
            x, _ = next(it)
        x = x.to(device)
        loss = btcvae_loss(model, x, dataset_size)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
