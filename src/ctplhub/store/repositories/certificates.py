"""The certificates issued (DESIGN §6.1): one row each, and the way back from a
certificate to its vehicle (``services.certificates.CertificateRecords``)."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select

from ctplhub.services.certificates import IssuedRecord
from ctplhub.store.tables import certificates, policies


class SqlCertificateRecords:
    """Each call is its own short transaction: an issue writes one row and reads nothing
    back; a check reads one row joined to its policy's head."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, record: IssuedRecord) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                insert(certificates).values(
                    cert_id=record.cert_id,
                    insurer_code=record.insurer_code,
                    policy_no=record.policy_no,
                    kid=record.kid,
                    issued_at=record.issued_at,
                )
            )

    def vin_of(self, cert_id: str) -> str | None:
        query = (
            select(policies.c.vin)
            .select_from(certificates)
            .join(
                policies,
                (policies.c.insurer_code == certificates.c.insurer_code)
                & (policies.c.policy_no == certificates.c.policy_no),
            )
            .where(certificates.c.cert_id == cert_id)
        )
        with self._engine.connect() as conn:
            vin: str | None = conn.execute(query).scalar_one_or_none()
        return vin
