"""GAN losses on raw discriminator logits. Each entry: (D loss(real, fake), G loss(fake))."""

import torch.nn.functional as F


def d_hinge(real, fake):
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def g_hinge(fake):
    return -fake.mean()


def d_ns(real, fake):  # non-saturating: -log sigmoid(real) - log(1 - sigmoid(fake))
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_ns(fake):  # -log sigmoid(fake)
    return F.softplus(-fake).mean()


def d_wasserstein(real, fake):  # no gradient penalty: pair it with a Lipschitz D (spectral norm)
    return fake.mean() - real.mean()


def g_wasserstein(fake):
    return -fake.mean()


LOSSES = {
    "hinge": (d_hinge, g_hinge),
    "ns": (d_ns, g_ns),
    "wasserstein": (d_wasserstein, g_wasserstein),
}
