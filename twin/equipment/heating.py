"""A heated sludge tank: heat exchanger with fouling, losses to ambient, temperature balance.

Energy balance of a completely mixed tank (Metcalf & Eddy 2014, section 13-9, digester
heating):

    rho cp V dT/dt = rho cp Q (T_in - T) + Q_hx - U_loss A_loss (T - T_amb)

Heat exchanger duty is limited by its capacity: Q_hx <= U_hx(F) A_hx LMTD, with the overall
coefficient reduced by fouling through the fouling resistance: 1/U = 1/U_clean + R_f.
Here the heat input needed is returned and the achievable maximum for the exchanger's
condition; the heat source's efficiency gives the energy drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

RHO_CP_WATER = 998.0 * 4186.0  # J/(m3 K)


@dataclass(frozen=True)
class HeatedTank:
    volume_m3: float
    loss_ua_w_k: float  # walls, roof and floor: sum of U A, W/K
    hx_u_clean_w_m2k: float = 600.0
    hx_area_m2: float = 50.0
    hx_lmtd_k: float = 20.0
    heater_efficiency: float = 0.9

    def hx_capacity_w(self, fouling_resistance_m2k_w: float = 0.0) -> float:
        u = 1.0 / (1.0 / self.hx_u_clean_w_m2k + fouling_resistance_m2k_w)
        return u * self.hx_area_m2 * self.hx_lmtd_k

    def steady_heat_w(self, q_m3_d: float, t_in_c: float, t_set_c: float, t_amb_c: float) -> float:
        """Heat input that holds the tank at ``t_set_c`` (W)."""
        return RHO_CP_WATER * q_m3_d / 86400.0 * (t_set_c - t_in_c) + self.loss_ua_w_k * (t_set_c - t_amb_c)

    def dT_dt_k_s(self, t_c: float, q_m3_d: float, t_in_c: float, heat_w: float, t_amb_c: float) -> float:
        return (RHO_CP_WATER * q_m3_d / 86400.0 * (t_in_c - t_c) + heat_w
                - self.loss_ua_w_k * (t_c - t_amb_c)) / (RHO_CP_WATER * self.volume_m3)
