"""Using a pre-trained encoder on labelled data: fine-tuning, few labels, transfer."""
