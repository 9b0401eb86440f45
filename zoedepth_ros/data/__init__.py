"""Training and evaluation data: the sample contract, dataset layouts, bags, augmentation."""
