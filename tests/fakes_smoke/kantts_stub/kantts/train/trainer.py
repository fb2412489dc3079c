from kantts._stub import not_real

GAN_Trainer = Sambert_Trainer = distributed_init = not_real
