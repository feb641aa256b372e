"""The RL family of SPEC section 5: one policy, one rollout/reward path, one trainer."""
