-- AlterTable
ALTER TABLE "staff_members" ADD COLUMN     "google_subject" TEXT;
