-- DropIndex
DROP INDEX "api_clients_name_key";

-- CreateIndex
CREATE UNIQUE INDEX "api_clients_one_active_per_name" ON "api_clients"("name") WHERE (revoked_at IS NULL);
