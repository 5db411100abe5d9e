-- DropIndex
DROP INDEX "optouts_idempotency_key_key";

-- CreateIndex
CREATE UNIQUE INDEX "optouts_one_per_client_key" ON "optouts"("api_client_id", "idempotency_key");
