"""Frank-Wolfe with projected forward gradients, dlADMM, mDLAM and the ADMM baselines."""
