-- AlterTable
ALTER TABLE "optouts" ADD COLUMN     "next_attempt_at" TIMESTAMPTZ(3);
